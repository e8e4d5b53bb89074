"""The demo chain's knowledge base (Chinese, with English titles): what reps look up on the shop
floor and the call centre reads out. (code, topic, title, title_en, tags, body)"""

ARTICLES = (
    (
        "return-7-days",
        "policy",
        "七天无理由退换货政策",
        "Seven-day no-reason returns",
        "退货,换货,退款,无理由,七天",
        "自签收之日起7天内，商品未使用、包装及配件齐全的，可无理由退换货。"
        "大件家具（沙发、床、餐桌）退货需扣除往返运费；定制商品不适用无理由退货。"
        "退款在收到退货并验收后3个工作日内原路退回。门店、网店、小程序购买的商品均可在任一门店办理。",
    ),
    (
        "custom-returns",
        "policy",
        "定制家具退换说明",
        "Returns of made-to-order furniture",
        "定制,退货,尺寸,面料",
        "定制家具（指定尺寸、面料或颜色）下单生产后不支持无理由退货。"
        "如出现质量问题或与订单不符，可免费返修或更换；生产前48小时内可免费修改订单。",
    ),
    (
        "price-protection",
        "policy",
        "30天价格保护",
        "30-day price protection",
        "保价,降价,差价,退差价",
        "购买后30天内同款商品在本品牌任一渠道降价，可凭订单申请退还差价；"
        "限时秒杀、清仓特价和赠品除外。会员在小程序“我的订单”中可自助申请。",
    ),
    (
        "leather-sofa-care",
        "care",
        "真皮沙发保养",
        "Caring for a leather sofa",
        "沙发,真皮,皮革,保养,清洁",
        "避免阳光直射和靠近暖气，保持与热源50厘米以上距离。每周用干软布除尘，"
        "每3个月使用专用皮革护理剂一次。污渍用微湿的软布轻拭，切勿使用酒精、洗洁精或湿巾。",
    ),
    (
        "fabric-sofa-care",
        "care",
        "布艺沙发清洁与保养",
        "Cleaning a fabric sofa",
        "沙发,布艺,沙发套,清洗,起球",
        "可拆洗的沙发套请冷水手洗或轻柔机洗，不可漂白、不可烘干，阴干后再装回。"
        "每周用吸尘器清洁缝隙；出现起球可用剃毛器处理，属正常现象，不影响质保。",
    ),
    (
        "mattress-care",
        "care",
        "床垫使用与翻面",
        "Using and turning a mattress",
        "床垫,翻面,保养,弹簧,凹陷",
        "新床垫前3个月每2周调转一次头尾，之后每3个月翻面或调头一次，使受力均匀。"
        "请使用床垫保护罩，避免在床垫上跳跃或长期坐在边缘。深度超过3厘米的凹陷属质量问题，可申请质保。",
    ),
    (
        "wood-table-care",
        "care",
        "实木餐桌椅保养",
        "Caring for solid-wood dining tables and chairs",
        "餐桌,餐椅,实木,划痕,保养",
        "热锅、热杯请使用隔热垫；水渍及时擦干。每半年可用木蜡油护理一次。"
        "细小划痕可用同色修补笔处理；送货时发现的划痕、裂纹请拍照并在48小时内联系门店。",
    ),
    (
        "bedding-wash",
        "care",
        "床单被套洗涤说明",
        "Washing sheets and duvet covers",
        "床单,被套,枕套,洗涤,缩水",
        "首次使用前请单独冷水清洗一次。30℃以下水温、中性洗涤剂，深浅颜色分开洗。"
        "纯棉制品首次洗涤可能有1%—3%的缩水，属正常范围。",
    ),
    (
        "delivery-install",
        "delivery",
        "送货与安装服务",
        "Delivery and assembly",
        "送货,安装,上楼,预约,配送",
        "市区免费送货上门并安装，郊区按距离收取配送费。送货前1天电话预约时间，"
        "无电梯楼层大件上楼按层收费。安装完成后请当场验收，并在送货单上签字确认。",
    ),
    (
        "delivery-delay",
        "delivery",
        "送货延误的处理",
        "When a delivery is late",
        "送货,延误,晚到,投诉,补偿",
        "因我方原因延误送货的，门店应在客户反映后2小时内给出新的送货时间；"
        "延误超过3天的，可赠送靠垫或抱枕一个，或给予订单金额2%的补偿券。",
    ),
    (
        "warranty",
        "warranty",
        "家具质保期限",
        "Furniture warranty periods",
        "质保,保修,维修,期限,框架",
        "沙发框架质保5年，海绵及面料1年；床垫弹簧质保10年；实木家具结构质保3年；"
        "五金件质保1年。质保期内非人为损坏免费维修，凭订单号或手机号即可查询。",
    ),
    (
        "complaint-process",
        "service",
        "投诉处理流程与时限",
        "Handling a complaint: steps and times",
        "投诉,处理,回访,满意度,时限",
        "接到投诉后1小时内调取客户历史记录，2小时内给出首个解决方案，"
        "问题解决后24小时内进行满意度回访并记录结果，回访完成后归档。"
        "同一客户30天内再次投诉的，请店长亲自跟进。",
    ),
    (
        "membership",
        "service",
        "会员积分与等级",
        "Membership points and levels",
        "会员,积分,等级,生日,优惠",
        "每消费1元积1分，积分可在下次购物时抵扣（100分抵1元）。年消费满5000元升级为金卡会员，"
        "享生日月9.5折和优先送货。积分有效期为2年。",
    ),
)
